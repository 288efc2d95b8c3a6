\version "2.18.2"
\bookpart {
  \include "../header.ily"
  \header { title = "Two" }
  \score { { d''1 } }
}
