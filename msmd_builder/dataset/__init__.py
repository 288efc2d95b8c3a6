"""What a consumer of a built dataset uses.

The shard reader (:func:`open_split`, :func:`open_shard`; h5py and numpy only),
the built-piece reader of a work directory (:mod:`.built`), training pairs
(:mod:`.pairs`), the score position at every spectrogram frame
(:mod:`.positions`) and system passages (:mod:`.passages`); numpy only, no torch.
"""

from msmd_builder.dataset.reader import open_shard, open_split

__all__ = ["open_split", "open_shard"]
