\version "2.24.0"

\header {
  title = "Prelude in E-flat"
  composer = "Example Composer B"
  opus = "Op. 7"

  mutopiatitle = "Prelude in E-flat"
  mutopiacomposer = "ExampleB"
  mutopiaopus = "O 7"
  mutopiainstrument = "Piano"
  date = "2025"
  source = "Written for msmd-builder"
  style = "Romantic"
  license = "Public Domain"
  maintainer = "msmd-builder"

  tagline = ##f
}

% Block chords in both hands: chords containing a second (bars 9, 10, 12),
% chords with accidentals (bars 6, 11), and arpeggio marks, some of them
% connected across both staves.

upper = \relative c'' {
  \clef treble
  \key ees \major
  \time 4/4

  <ees, g bes>2\p <ees aes c> |                  % 1
  <d f bes>2 <ees g bes> |                       % 2
  <c ees aes>4 <c ees g> <bes d f aes>2\arpeggio | % 3
  <bes ees g>1\arpeggio |                        % 4
  <ees g c>2\mf <d f b> |                        % 5
  <c ees g c>2 <b d f aes>\arpeggio |            % 6
  <c ees g>4 <c ees aes> <d f aes> <d f bes> |   % 7
  <ees g bes>1 |                                 % 8
  <ees aes c>2\p <ees aes bes c> |               % 9
  <d f bes>2 <d f aes bes> |                     % 10
  <c ees a>2 <d f bes> |                         % 11
  <ees g bes>4 <f aes c> <ees g bes>\arpeggio <d f aes bes>\arpeggio | % 12
  <ees g bes ees>1\arpeggio\fermata \bar "|."    % 13
}

lower = \relative c {
  \clef bass
  \key ees \major
  \time 4/4

  <ees bes'>2 <ees aes c> |                      % 1
  <bes f'>2 <ees bes'> |                         % 2
  <aes, ees'>4 <g ees'> <bes f'>2\arpeggio |      % 3
  <ees, bes' ees>1\arpeggio |                    % 4
  <c' g'>2 <g d'> |                              % 5
  <aes ees'>2 <g d'>\arpeggio |                  % 6
  <aes ees'>4 <aes ees'> <bes f'> <bes aes'> |   % 7
  <ees, ees'>1 |                                 % 8
  <aes ees'>2 <aes ees'> |                       % 9
  <bes f'>2 <bes f'> |                           % 10
  <f c' f>2 <bes f'> |                           % 11
  <ees, ees'>4 <f f'> <g g'>\arpeggio <bes bes'>\arpeggio | % 12
  <ees, bes' g'>1\arpeggio\fermata \bar "|."     % 13
}

pedal = {
  s1*3 | s2\sustainOn s2\sustainOff |
  s1*7 | s2\sustainOn s2\sustainOff\sustainOn | s2. s4\sustainOff
}

\score {
  \new PianoStaff \with { connectArpeggios = ##t } <<
    \new Staff = "upper" \upper
    \new Staff = "lower" << \lower \pedal >>
  >>
  \layout { }
  \midi {
    \tempo 4 = 66
  }
}
