title = "Nested Piece"
mutopiatitle = "Nested"
mutopiacomposer = "AlphaA"
mutopiainstrument = "Clavichord"
