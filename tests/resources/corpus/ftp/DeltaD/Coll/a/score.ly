\version "2.10.0"
\header { mutopiatitle = "A" mutopiainstrument = "Violin" }
\score { { c'1 } }
