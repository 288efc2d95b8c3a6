\version "2.12.0"
\include "nothere.ily"
\header {
  mutopiatitle = "Missing"
  mutopiainstrument = "Piano"
}
\score { { c'1 } }
