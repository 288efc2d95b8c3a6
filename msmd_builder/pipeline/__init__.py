"""The orchestrator: run the per-piece stages over many pieces, in parallel.

Each piece goes through the stages in order; a stage that fails raises a
:class:`~msmd_builder.core.errors.PieceError`, which ends that piece only.  Every
stage caches its result under a content key, so running the same build twice
does nothing the second time, and a killed build resumes.

Work is spread over local worker processes (``workers``); each worker handles
whole pieces, so one LilyPond crash or hang costs one piece and its time
limit, nothing else.
"""
