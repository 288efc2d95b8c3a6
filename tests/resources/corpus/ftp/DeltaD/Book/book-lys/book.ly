\version "2.12.0"
\header { title = "A Book" }
\score { { e'1 } }
