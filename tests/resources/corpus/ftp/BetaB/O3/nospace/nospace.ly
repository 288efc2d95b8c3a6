\version "2.8.0"
\header {
  title = "Etude"
  mutopiacomposer="BetaB"
  mutopiainstrument="Piano"
}
\score { { c'1 } }
