"""msmd-builder: build the MSMD audio–sheet-music dataset from LilyPond sources.

The package is organised as a pipeline, one module per stage::

    corpus -> normalize -> render -> score -> align -> perform -> spectrogram -> shards
                                                                                splits

Each stage is a function from files to files with a small frozen dataclass as its
contract; :mod:`msmd_builder.pipeline` schedules them.
"""

__version__ = "0.1.0"
