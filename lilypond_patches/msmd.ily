%% msmd-builder's LilyPond settings, loaded before every piece with
%%   lilypond -dinclude-settings=msmd.ily -I <this folder> piece.ly
%% The piece's own sources are never edited by hand-written regexes; what we
%% need from LilyPond is added here.
\include "msmd-compat.ily"
\include "msmd-render.ily"
\include "msmd-geometry.ily"
