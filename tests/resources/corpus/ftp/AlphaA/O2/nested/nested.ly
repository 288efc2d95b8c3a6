\version "2.10.0"
\include "common/setup.ily"

\header {
  \include "common/fields.ily"
  opus = "Op. 2"
}

\score { \music }
