\version "2.10.0"
\header { mutopiatitle = "B" mutopiainstrument = "Piano" }
\score { { c'1 } }
