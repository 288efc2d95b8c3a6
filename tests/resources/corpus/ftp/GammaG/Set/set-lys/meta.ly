\header {
  mutopiacomposer = "GammaG"
  mutopiainstrument = "Piano"
}
