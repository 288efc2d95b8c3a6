\header {
  title = "Suite"
  mutopiacomposer = "GammaG"
  mutopiainstrument = "Harpsichord, Piano"
}
