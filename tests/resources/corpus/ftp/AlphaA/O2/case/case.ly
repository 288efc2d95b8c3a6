\version "2.14.0"
\include "Notes.ily"
\header {
  mutopiatitle = "Case"
  mutopiainstrument = "Piano"
}
\score { \notes }
