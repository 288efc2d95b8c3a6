%% Compatibility shims for Scheme functions that old Mutopia sources call and
%% that current LilyPond removed.  convert-ly cannot upgrade these calls, so we
%% provide definitions with the old signatures.  Each shim keeps the music
%% (notes, timing, pitches) exactly; only engraving details may differ from the
%% original edition, as noted per shim.

%% LilyPond <= 2.12: #(override-auto-beam-setting '(end * * * *) 1 4 'Staff).
%% Beaming rules moved to beamExceptions; the custom rule is dropped and
%% LilyPond's default beaming for the time signature is used instead.
#(define-public (override-auto-beam-setting . args) (make-music 'SequentialMusic 'elements '()))
#(define-public (revert-auto-beam-setting . args) (make-music 'SequentialMusic 'elements '()))

%% LilyPond <= 2.10: #(set-octavation 1) is \ottava #1 today.
#(define-public (set-octavation octave) (make-music 'OttavaEvent 'ottava-number octave))

%% LilyPond <= 2.12: (unfold-repeats music) took no list of repeat types.
#(define-public unfold-repeats
   (let ((current (@ (lily) unfold-repeats)))
     (case-lambda
      ((music) (current '() music))
      ((types music) (current types music)))))
