\version "2.8.0"
\header {
  title = "Invention"
  mutopiacomposer = "BetaB"
  mutopiainstrument = "Clavier"
}
\score { { c'1 } }
