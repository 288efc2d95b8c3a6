\version "2.18.2"
\bookpart {
  \include "../header.ily"
  \header { title = "One" }
  \score { { c''1 } }
}
