"""Train/valid/test splits: MSMD's three recipes, leave-one-composer-out, subsets, import.

A split assigns piece ids to parts (``train``, ``valid``, ``test``, and any
further named lists an imported file carries). It is made from the corpus
index and, optionally, a build report; nothing is rendered or re-read from
the Mutopia tree, so splits can be made, changed and imported at any time.

Recipes (Dorfer et al. 2018, Section 2.2 and Table 1):

``all``
    A random mix of all pieces, train/valid/test 360/19/100 of 479.
``bach-only``
    Only J. S. Bach's pieces (composer directory ``BachJS``), 100/23/50 of 173.
``bach-out``
    Every Bach piece is the test part; the other composers' pieces are split
    into train and valid, 281/25 of 306.
``leave-out``
    ``bach-out`` for any composer directory (``leave_out="MozartWA"``).

Assignment is deterministic and independent of input order: each id gets the
rank ``sha256("split", seed, id)``; the first ranks go to test, the next to
valid, the rest to train. A piece's rank does not depend on the other pieces,
so a corpus that gains or loses a few pieces moves only pieces near the part
boundaries. Data-size subsets rank train ids by their own seeded hash and keep
a prefix, so a smaller subset is always contained in a larger one.

Files are YAML in the layout of MSMD's own piece lists (``train:``, ``valid:``,
``test:``, each a list of ids) with an optional ``meta:`` mapping recording how
the split was made; see ``docs/splits.md``.
"""
