\version "2.24.0"

\header {
  title = "Little Waltz"
  composer = "Example Composer B"
  opus = "Op. 15"

  mutopiatitle = "Little Waltz"
  mutopiacomposer = "ExampleB"
  mutopiaopus = "O 15"
  mutopiainstrument = "Piano"
  date = "2025"
  source = "Written for msmd-builder"
  style = "Romantic"
  license = "Public Domain"
  maintainer = "msmd-builder"

  tagline = ##f
}

% Da Capo al Fine, written as most Mutopia piano pieces write it:
% a text script under the last note of each section,
% "Fine." at the end of A (bar 8) and "D.C. al Fine." at the end of B
% (bar 16).  Playing order: bars 1-16, then 1-8.

upper = \relative c'' {
  \clef treble
  \key a \major
  \time 3/4
  \tempo "Tempo di valse"

  e2\p( cis4) |                        % 1
  a'2( e4) |                           % 2
  fis4( e d) |                         % 3
  cis2. |                              % 4
  d4( fis b) |                         % 5
  a4( gis fis) |                       % 6
  e4( a b) |                           % 7
  a2._\markup { \large \italic "Fine." } \bar "|."   % 8

  cis,2\mf( a4) |                      % 9
  fis2( cis'4) |                       % 10
  d4( cis b) |                         % 11
  cis2. |                              % 12
  d4( e fis) |                         % 13
  gis4( fis eis) |                     % 14
  d4( cis b) |                         % 15
  \textLengthOn
  e2._\markup { \large \italic "D.C. al Fine." } \bar "||"   % 16
}

lower = {
  \clef bass
  \key a \major
  \time 3/4

  a,4 <e a cis'> q |                   % 1
  e,4 <e a cis'> q |                   % 2
  d4 <fis a d'> q |                    % 3
  a,4 <e a cis'> q |                   % 4
  b,4 <fis b d'> q |                   % 5
  e,4 <e gis d'> q |                   % 6
  cis4 <e a cis'> <e gis d'> |         % 7
  a,4 <e a cis'> r |                   % 8

  fis,4 <fis a cis'> q |               % 9
  cis4 <fis a cis'> q |                % 10
  b,4 <fis b d'> q |                   % 11
  cis4 <eis gis cis'> q |              % 12
  d4 <fis a d'> q |                    % 13
  cis4 <eis gis b> q |                 % 14
  b,4 <fis b d'> <e gis d'> |          % 15
  e,4 <e gis d'> q |                   % 16
}

\score {
  \new PianoStaff <<
    \new Staff = "upper" \upper
    \new Staff = "lower" \lower
  >>
  \layout { }
  \midi {
    \tempo 4 = 138
  }
}
