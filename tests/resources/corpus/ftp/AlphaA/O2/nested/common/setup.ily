\include "english.ly"
\include "notes.ily"
