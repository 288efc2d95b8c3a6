\version "2.18.0"
\include "shared.ly"
\include "meta.ly"
\header { title = "First" }
\score { \theme }
