\header {
  mutopiatitle = "Book"
  mutopiacomposer = "DeltaD"
  mutopiainstrument = "Harpsichord"
}
