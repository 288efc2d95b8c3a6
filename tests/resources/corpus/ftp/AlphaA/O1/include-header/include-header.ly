\include "header.ily"

\score {
  { c'4 e' g' c'' }
}
