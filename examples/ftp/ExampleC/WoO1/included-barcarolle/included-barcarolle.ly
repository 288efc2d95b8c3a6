\version "2.24.0"

% The \header lives in included-barcarolle-header.ily and the notes in
% included-barcarolle-music.ily; this main file only puts them together.

\include "included-barcarolle-header.ily"
\include "included-barcarolle-music.ily"

\score {
  \new PianoStaff <<
    \new Staff = "upper" \upper
    \new Staff = "lower" \lower
  >>
  \layout { }
  \midi {
    \tempo 4 = 90
  }
}
