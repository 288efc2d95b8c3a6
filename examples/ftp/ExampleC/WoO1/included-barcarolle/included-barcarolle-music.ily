\version "2.24.0"

upper = \relative c'' {
  \clef treble
  \key g \minor
  \time 6/8
  \tempo "Andantino"

  d4.\p( bes8 c d) |                   % 1
  ees4( d8 c4 bes8) |                  % 2
  a4.( bes8 c d) |                     % 3
  a4.~ a4 r8 |                         % 4
  d4.\mf( g8 f ees) |                  % 5
  d4( c8 bes4 a8) |                    % 6
  g4( a8 bes4 c8) |                    % 7
  d4. r4. |                            % 8
  ees4.\p( c8 d ees) |                 % 9
  d4.( bes8 c d) |                     % 10
  c4( bes8 a4 fis8) |                  % 11
  g4. r4. \bar "|."                    % 12
}

lower = {
  \clef bass
  \key g \minor
  \time 6/8

  g,8 d g bes g d |                    % 1
  c8 g ees' g c' g |                   % 2
  d8 a c' d' c' a |                    % 3
  d8 a d' fis' d' a |                  % 4
  g,8 d g bes g d |                    % 5
  ees8 bes ees' d a fis |              % 6
  g,8 d g c g ees |                    % 7
  d8 a d' fis' d' a |                  % 8
  c8 g c' ees' c' g |                  % 9
  g,8 d g bes g d |                    % 10
  d8 a c' fis' c' a |                  % 11
  <g,, g,>4. r4. \bar "|."             % 12
}
