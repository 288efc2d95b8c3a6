\version "2.19.0"
\header {
  title = "Air"
  mutopiacomposer = "BetaB"
  mutopiainstrument = "Violin"
}
\score { { g'1 } }
