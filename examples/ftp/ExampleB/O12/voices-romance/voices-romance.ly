\version "2.24.0"

\header {
  title = "Romance"
  composer = "Example Composer B"
  opus = "Op. 12"

  mutopiatitle = "Romance"
  mutopiacomposer = "ExampleB"
  mutopiaopus = "O 12"
  mutopiainstrument = "Piano"
  date = "2025"
  source = "Written for msmd-builder"
  style = "Romantic"
  license = "Public Domain"
  maintainer = "msmd-builder"

  tagline = ##f
}

% Two voices on the upper staff (<< { } \\ { } >>) with rests in the
% lower voice and a unison on a shared notehead (bar 3, beat 4);
% in bars 5-8 the left hand crosses into the upper staff (\change Staff).

soprano = \relative c'' {
  f2\p d4 ees |                        % 1
  f4 g f2 |                            % 2
  ees4 d c bes |                       % 3  (bes: unison with the alto)
  c2. r4 |                             % 4
  f2.\mf d4 |                          % 5
  ees2 g |                             % 6
  f4 ees d c |                         % 7
  d1 |                                 % 8
  f2\p d4 ees |                        % 9
  f4 g f ees |                         % 10
  d4 ees c2 |                          % 11
  bes1 |                               % 12
}

alto = \relative c'' {
  r4 bes bes c |                       % 1
  d4 ees d2 |                          % 2
  c4 bes a bes |                       % 3
  a2. r4 |                             % 4
  s1*4 |                               % 5-8
  r4 bes bes c |                       % 9
  d4 ees d c |                         % 10
  bes4 c a2 |                          % 11
  f1 |                                 % 12
}

upper = {
  \clef treble
  \key bes \major
  \time 4/4
  << \soprano \\ \alto >>
  \bar "|."
}

lower = {
  \clef bass
  \key bes \major
  \time 4/4

  bes,2 bes,4 a, |                     % 1
  bes,4 ees d2 |                       % 2
  c4 d f g |                           % 3
  f,2. r4 |                            % 4
  \voiceTwo  % stems down while sharing the upper staff with the soprano
  bes,8 f bes \change Staff = "upper" d' f' d' \change Staff = "lower" bes f |   % 5
  ees8 bes \change Staff = "upper" ees' g' bes' g' ees' \change Staff = "lower" bes | % 6
  f,8 c f a \change Staff = "upper" c' ees' c' \change Staff = "lower" a |     % 7
  bes,8 f bes \change Staff = "upper" d' \change Staff = "lower" bes f d bes, | % 8
  \oneVoice
  bes,2 bes,4 a, |                     % 9
  bes,4 ees d f, |                     % 10
  f,4 f, f,2 |                         % 11
  <bes,, bes,>1 |                      % 12
  \bar "|."
}

\score {
  \new PianoStaff <<
    \new Staff = "upper" \upper
    \new Staff = "lower" \lower
  >>
  \layout { }
  \midi {
    \tempo 4 = 76
  }
}
