\version "2.19.0"
\header {
  title = "Duet"
  mutopiacomposer = "BetaB"
  mutopiainstrument = "Piano Duet"
}
\score { { g'1 } }
