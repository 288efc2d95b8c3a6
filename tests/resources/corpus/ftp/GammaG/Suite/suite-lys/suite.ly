\version "2.18.2"
#(ly:set-option 'relative-includes #t)
\include "./parts/one.ly"
\include "./parts/two.ly"
