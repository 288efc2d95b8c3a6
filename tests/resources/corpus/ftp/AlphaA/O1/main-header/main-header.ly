\version "2.18.2"

\header {
  title = "Little Prelude"
  composer = "A. Alpha (1700-1750)"
  opus = "Op. 1"
  style = "Baroque"
  license = "Public Domain"
  mutopiatitle = "Little Prelude"
  mutopiacomposer = "AlphaA"
  mutopiainstrument = "Harpsichord, Piano"
  maintainer = "Nobody"
  % mutopiainstrument = "Organ"
  tagline = ##f
}

%{ \include "not-really.ily" %}
\score {
  \relative c' { c4 d e f | g1 \bar "|." }
  \layout { }
  \midi { }
}
