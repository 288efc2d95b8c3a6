\version "2.24.0"

\header {
  title = "Barcarolle"
  composer = "Example Composer C"
  opus = "WoO 1"

  mutopiatitle = "Barcarolle"
  mutopiacomposer = "ExampleC"
  mutopiaopus = "WoO 1"
  mutopiainstrument = "Piano"
  date = "2025"
  source = "Written for msmd-builder"
  style = "Romantic"
  license = "Creative Commons Attribution-ShareAlike 4.0"
  maintainer = "msmd-builder"

  tagline = ##f
}
