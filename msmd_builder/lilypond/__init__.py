"""The LilyPond boundary, owned in one place.

Running LilyPond and convert-ly (:mod:`.tools`) and reading the tables our hooks in
``lilypond_patches/`` write (:mod:`.logs`).
"""
