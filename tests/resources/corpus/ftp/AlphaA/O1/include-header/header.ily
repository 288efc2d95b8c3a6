\version "2.16.0"

\header {
  title = \markup { \bold "Song" \italic "Without Words" }
  composer = "A. Alpha"
  mutopiacomposer = "AlphaA"
  mutopiainstrument = "Piano"
  copyright = "Creative Commons Attribution 4.0"
}
