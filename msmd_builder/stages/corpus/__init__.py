r"""Corpus scan: find the pieces of a Mutopia checkout and write the corpus index.

First stage of the pipeline. :func:`scan_corpus` reads a Mutopia checkout (a
directory that contains ``ftp/``; nothing is written there) and describes every
piece by a :class:`PieceEntry`: id, main file, include files with their
SHA-256, header fields, ``\version``, whether the sources are valid UTF-8 and
whether the piece is solo keyboard (the MSMD selection, extended).
:func:`write_index` stores the entries as ``<work>/index.csv``; later stages
read it back with :func:`read_index` and never re-parse Mutopia paths.

Reading LilyPond
----------------
Files are decoded as UTF-8 (with replacement characters and a problem when
that fails), comments are dropped, and three things are read: ``\version``,
``\include`` and ``\header { }`` blocks. Includes are followed recursively, as
LilyPond does: an include inside a ``\header`` adds its assignments to that
header, one elsewhere is read as a LilyPond file. A name is resolved against
the including file's directory, then the main file's directory (LilyPond's
include path; this is also how ``\include "../x.ly"`` resolves), then
LilyPond's own ``ly/`` files (:data:`LILYPOND_SYSTEM_INCLUDES`, not recorded).
``\include \name`` is resolved through a ``name = "file"`` definition.

Problems
--------
Each entry lists what the scan noticed, as ``<kind>:<detail>`` strings:
``missing-include``, ``case-mismatch`` (the include names a file that exists
only with other letter case; it is followed), ``dynamic-include`` (a Scheme
expression, not resolved), ``include-cycle``, ``encoding`` (a file is not
UTF-8), ``no-version``, ``collection``, ``header-only``, ``header-sidecar``,
``id-collision`` and ``layout``. ``missing-include`` and ``encoding`` are the
``error_class`` strings of :class:`~msmd_builder.core.errors.MissingIncludeError`
and :class:`~msmd_builder.core.errors.SourceEncodingError`.

Which files are pieces, the piece id and the keyboard rule are described in
:func:`scan_corpus`, :func:`classify_instrument` and ``docs/corpus.md``.
"""
