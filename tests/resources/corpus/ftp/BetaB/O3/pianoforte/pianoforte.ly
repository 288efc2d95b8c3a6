\version "2.8.0"
\header {
  title = "Menuet"
  mutopiacomposer = "BetaB"
  mutopiainstrument = "Pianoforte"
}
\score { { c'1 } }
