\version "2.24.0"

\header {
  title = "Chorale with Ties"
  composer = "Example Composer A"
  opus = "Op. 2"

  mutopiatitle = "Chorale with Ties"
  mutopiacomposer = "ExampleA"
  mutopiaopus = "O 2"
  mutopiainstrument = "Piano"
  date = "2025"
  source = "Written for msmd-builder"
  style = "Classical"
  license = "Public Domain"
  maintainer = "msmd-builder"

  tagline = ##f
}

% Ties within a bar, across barlines, across a forced system break,
% whole tied chords and chords where only some notes are tied.

upper = \relative c'' {
  \clef treble
  \key f \major
  \time 4/4

  c2\mp a4 bes |                       % 1
  c2~ c8 d c bes |                     % 2  tie inside the bar
  a4 g f2~ |                           % 3  tie across the barline
  f4 g a bes~ | \break                 % 4  tie across the system break
  bes4 a g c |                         % 5
  <f, a c>2~ <f a c>4 <e g bes> |      % 6  tied chord
  <f a>2 <f~ bes d> |                  % 7  only the f is tied on
  <f a c>2 <e g c>~ |                  % 8  whole chord tied over the barline
  <e g c>4 <f~ a c> <f bes d> <e g c> |  % 9  partially tied chord
  <f a c>2~ <f a c>8 d' c bes |        % 10
  a4 <bes d g>~ <bes~ d g>4 <bes c e> | % 11 tied chord, then one note held
  <a c f>1 \bar "|."                   % 12
}

lower = \relative c {
  \clef bass
  \key f \major
  \time 4/4

  f2 f4 g |                            % 1
  a2~ a4 e |                           % 2
  f4 c f2~ |                           % 3
  f4 e d g~ |                          % 4
  g4 f e c |                           % 5
  <f, f'>2~ <f f'>4 c' |               % 6
  f2 bes, |                            % 7
  a2 c~ |                              % 8
  c4 f bes, c |                        % 9
  <f, f'>2 <a f'> |                    % 10
  <d f>4 <g, bes'>~ <g bes'> c |       % 11
  <f, f'>1 \bar "|."                   % 12
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
