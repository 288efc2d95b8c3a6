\version "2.24.0"

\header {
  title = "Arpeggio Study"
  subtitle = "across the staves"
  composer = "Example Composer D"
  opus = "Op. 1"

  mutopiatitle = "Arpeggio Study"
  mutopiacomposer = "ExampleD"
  mutopiaopus = "O 1"
  mutopiainstrument = "Piano"
  date = "2025"
  source = "Written for msmd-builder"
  style = "Romantic"
  license = "Public Domain"
  maintainer = "msmd-builder"

  tagline = ##f
}

% Broken chords that the right hand starts in the lower staff and carries
% up into its own (\change Staff), as printed in many piano studies; the
% left hand holds the bass and, in bars 5-7, crosses over into the upper
% staff itself (stems down, as a second voice there).  Every printed
% notehead sits on the staff it is drawn on, whichever voice it belongs to.

upper = {
  \clef treble
  \key g \major
  \time 4/4
  \tempo "Andante"

  \change Staff = "lower" g8\p b \change Staff = "upper" d' g' b' g' d' \change Staff = "lower" b |  % 1
  \change Staff = "lower" a8 c' \change Staff = "upper" e' a' c'' a' e' c' |                        % 2
  \change Staff = "lower" fis8 a \change Staff = "upper" d' fis' a' fis' d' a |                     % 3
  g'2 r2 |                                                                                           % 4
  \voiceOne b'4 d''8 c'' b'4 a' |                                                                 % 5
  g'4 b'8 a' g'4 fis' |                                                                              % 6
  e'4 g'8 fis' e'4 d' |                                                                              % 7
  \oneVoice d'1 \bar "|."                                                                            % 8
}

lower = {
  \clef bass
  \key g \major
  \time 4/4

  g,1 |                                                  % 1
  a,1 |                                                  % 2
  d1 |                                                   % 3
  <g, d>2 r2 |                                           % 4
  \voiceTwo g,8 d g \change Staff = "upper" b d' \change Staff = "lower" g d g, |   % 5
  e,8 b, e \change Staff = "upper" g b \change Staff = "lower" e b, e, |  % 6
  c8 g c' \change Staff = "upper" e' g' \change Staff = "lower" c' g c | % 7
  \oneVoice <g, d>1 \bar "|."                          % 8
}

\score {
  \new PianoStaff <<
    \new Staff = "upper" \upper
    \new Staff = "lower" \lower
  >>
  \layout { }
  \midi {
    \tempo 4 = 72
  }
}
