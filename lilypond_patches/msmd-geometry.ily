%% msmd-builder geometry and event logs.
%%
%% Layout side: an engraver in every Score collects each NoteHead with the
%% note event that caused it (its 'msmd-id, set by msmd-render.ily), every Tie,
%% every StaffSymbol and system-start delimiter.  After page breaking, the
%% \paper page-post-process callback turns their extents into page positions
%% and writes two tables beside the PDF:
%%   <output>.msmd-noteheads.tsv   one row per notehead
%%   <output>.msmd-systems.tsv     one row per system (all its staves)
%% MIDI side: a performer in every Voice logs each note event it plays, with
%% its 'msmd-id, musical moment and that Voice (numbered within its score),
%% to <output>.msmd-performed.tsv.
%% Text scripts, marks and segno/coda signs (where jumps are written) go to
%% <output>.msmd-marks.tsv with their moment and the end of the note, rest or
%% skip they are attached to (a Voice engraver hears which ones that is).
%% Measures: a Score engraver notes where every measure starts (LilyPond's own
%% measureStartNow, the bar number, time signature length, alternative and the
%% command column); after page breaking each measure becomes one box per
%% system it is printed on, from its opening bar line (or the system's start)
%% to its closing bar line (or the system's end), in
%%   <output>.msmd-measures.tsv   one row per measure box
%% and every bar line and start of a repeat alternative, with its moment and
%% glyph, goes to <output>.msmd-barlines.tsv (where a performance can jump).
%% Both are written per book, like the noteheads.
%% <output>.msmd-repeats.tsv holds the volta repeats of every layout score
%% (rows "volta", written by msmd-render.ily as it splits the score) and, from
%% the layout's own iteration, where LilyPond started a repeat and where it
%% would return to its body (rows "iterated-start", "iterated-return"), so the
%% two can be checked against each other.
%%
%% Units: positions in PDF points (1/72 in), origin at the page's top-left
%% corner, y growing downwards; moments in whole notes as exact rationals.
%%
%% Every table starts with a format line, "#msmd-builder/<table>" TAB version,
%% then the tab-separated column names; msmd_builder/lilypond/logs.py holds the
%% same names and version as constants, and a test pins the two together.

#(define msmd-tables-version 4)

%% LilyPond's axis and direction constants, taken from its own module: a piece
%% may define music variables named X, Y or RIGHT (Chopin Op. 10 No. 1 has Y).
#(define msmd-X (@ (lily) X))
#(define msmd-Y (@ (lily) Y))
#(define msmd-RIGHT (@ (lily) RIGHT))

#(define (msmd-table-header port table columns)
   "Write the format line of TABLE and its header row COLUMNS (a list of strings) to PORT."
   (format port "#msmd-builder/~a\t~a\n~a\n" table msmd-tables-version
           (string-join columns "\t")))

%% The tables are written with display, not format: (ice-9 format) interprets its
%% control string character by character, and with one call per notehead, event
%% and coordinate it took a tenth or more of LilyPond's time on large pieces.
#(define (msmd-row port . fields)
   "Write FIELDS to PORT as one table row: each as display writes it (as format's
~a does), separated by tabs, ended by a newline."
   (if (pair? fields)
       (begin
         (display (car fields) port)
         (for-each (lambda (field) (write-char #\tab port) (display field port)) (cdr fields))))
   (newline port))

#(define (msmd-row-string . fields)
   "The row msmd-row writes, as a string."
   (call-with-output-string (lambda (port) (apply msmd-row port fields))))

#(define (msmd-flcc->string flcc)
   "file:line:char of an input location's (file line char column), as format's ~a:~a:~a."
   (call-with-output-string
    (lambda (port)
      (display (car flcc) port) (write-char #\: port)
      (display (cadr flcc) port) (write-char #\: port)
      (display (caddr flcc) port))))

#(define msmd-layout-score-index -1)
#(define msmd-midi-score-index -1)
#(define msmd-midi-voice-index -1)  % Voice contexts of the current MIDI score, counted
#(define msmd-pending-heads '())     % (score grob moment) awaiting page layout
#(define msmd-pending-ties '())
#(define msmd-pending-staves '())    % (score grob)
#(define msmd-book-index -1)
#(define msmd-performed-port #f)
#(define msmd-marks-port #f)
#(define msmd-pending-measures '())  % one vector per measure, see msmd-measure-engraver
#(define msmd-pending-barlines '())  % rows of the barlines table, newest first
#(define msmd-column-bars (make-hash-table))  % command column -> its bar line grobs
#(define msmd-repeats-port #f)

#(define msmd-mark-carriers (make-hash-table))  % text/articulation event -> (carriers len ...)

#(define (msmd-markup-signs m)
   "Names (\"segno\", \"coda\") of the jump signs that markup M draws."
   (cond
    ((and (pair? m) (procedure? (car m)))
     (let ((name (symbol->string (or (procedure-name (car m)) 'anonymous)))
           (args (if (list? (cdr m)) (cdr m) '())))
       (append
        (cond ((string=? name "segno-markup") '("segno"))
              ((member name '("coda-markup" "varcoda-markup")) '("coda"))
              ((and (string=? name "musicglyph-markup") (pair? args) (string? (car args)))
               (cond ((string-contains (car args) "segno") '("segno"))
                     ((string-contains (car args) "coda") '("coda"))
                     (else '())))
              (else '()))
        (append-map msmd-markup-signs args))))
    ((list? m) (append-map msmd-markup-signs m))
    (else '())))

#(define (msmd-script-sign grob)
   "\"segno\" or \"coda\" for a Script grob drawing that sign (\\segno, \\coda), else #f."
   (let* ((stencil (ly:grob-property grob 'script-stencil #f))
          (glyph (and (pair? stencil) (pair? (cdr stencil)) (cadr stencil))))
     (cond ((not (string? glyph)) #f)
           ((string-contains glyph "segno") "segno")
           ((string-contains glyph "coda") "coda")
           (else #f))))

#(define (msmd-mark-end grob context)
   "Where the music carrying a mark ends, as a moment string: the end of the
longest note, rest or skip it is attached to in its voice; the mark's own
moment for marks at a bar line; \"\" when unknown."
   (let* ((main (ly:moment-main (ly:context-current-moment context)))
          (cause (ly:grob-property grob 'cause #f))
          (box (and (ly:stream-event? cause) (hashq-ref msmd-mark-carriers cause #f))))
     (cond ((not (memq (grob::name grob) '(TextScript Script))) (msmd-rational main))
           ((and box (pair? (cdr box)))
            (hashq-remove! msmd-mark-carriers cause)
            (msmd-rational (+ main (apply max (cdr box)))))
           (else ""))))

#(define (msmd-log-mark score grob context text)
   "Write a text mark or script (where jumps like D.C. are written) to the marks table."
   (if (not msmd-marks-port)
       (begin
         (set! msmd-marks-port (open-output-file (msmd-output-file ".msmd-marks.tsv")))
         (msmd-table-header msmd-marks-port "marks"
                            '("score" "moment_main" "grob" "text" "end_main"))))
   (msmd-row msmd-marks-port
           score
           (msmd-rational (ly:moment-main (ly:context-current-moment context)))
           (grob::name grob)
           (string-map (lambda (c) (if (memv c '(#\tab #\newline)) #\space c)) text)
           (msmd-mark-end grob context))
   (force-output msmd-marks-port))

#(define (msmd-log-text-mark score grob context)
   "Log a grob with a markup text, naming the jump signs it draws as [segno] or [coda]."
   (let ((text (ly:grob-property grob 'text #f)))
     (if (markup? text)
         (msmd-log-mark score grob context
                        (string-append
                         (markup->string text)
                         (apply string-append
                                (map (lambda (sign) (format #f " [~a]" sign))
                                     (msmd-markup-signs text))))))))

#(define (msmd-mark-carrier-engraver context)
   "In a Voice: remember which notes, rests and skips each text script or
articulation comes with (heard in the same time step), for msmd-mark-end."
   (let ((box (list 'carriers)))
     (make-engraver
      ((start-translation-timestep engraver)
       (set! box (list 'carriers)))
      (listeners
       ((rhythmic-event engraver event)
        (let ((duration (ly:event-property event 'duration #f)))
          (if (ly:duration? duration)
              (set-cdr! box (cons (ly:moment-main (ly:duration-length duration)) (cdr box))))))
       ((text-script-event engraver event)
        (hashq-set! msmd-mark-carriers event box))
       ((articulation-event engraver event)
        (let* ((type (ly:event-property event 'articulation-type #f))
               (name (cond ((symbol? type) (symbol->string type))
                           ((string? type) type)
                           (else ""))))
          (if (or (string-contains name "segno") (string-contains name "coda"))
              (hashq-set! msmd-mark-carriers event box))))))))

#(define (msmd-log-repeat score kind start end count alternatives source)
   "Write one row of the repeats table: for KIND \"volta\" (or \"volta-specced\",
a body with parts played in some volte only) the repeat's START, body END,
COUNT and ALTERNATIVES (\"end=volte;...\"); for \"iterated-start\" where the
layout's iteration started a repeat; for \"iterated-return\" the START of the
body it returns to and the moment END it does so."
   (if (not msmd-repeats-port)
       (begin
         (set! msmd-repeats-port (open-output-file (msmd-output-file ".msmd-repeats.tsv")))
         (msmd-table-header msmd-repeats-port "repeats"
                            '("score" "kind" "start_main" "end_main" "count" "alternatives"
                              "source"))))
   (msmd-row msmd-repeats-port
           score kind (msmd-rational start) (if end (msmd-rational end) "")
           (or count "") alternatives source)
   (force-output msmd-repeats-port))

#(define (msmd-music-location music)
   "The source location of MUSIC as file:line:char, \"\" when unknown."
   (let ((origin (ly:music-property music 'origin #f)))
     (if (ly:input-location? origin)
         (let ((flcc (ly:input-file-line-char-column origin)))
           (msmd-flcc->string flcc))
         "")))

#(define (msmd-output-file suffix)
   (string-append (ly:parser-output-name) suffix))

#(define (msmd-event-id event)
   (let ((id (ly:event-property event 'msmd-id #f)))
     (if (integer? id)
         id
         (let ((music (ly:event-property event 'music-cause #f)))
           (if (ly:music? music) (ly:music-property music 'msmd-id -1) -1)))))

#(define (msmd-event-flag event name)
   (or (eq? #t (ly:event-property event name #f))
       (let ((music (ly:event-property event 'music-cause #f)))
         (and (ly:music? music) (eq? #t (ly:music-property music name #f))))))

#(define (msmd-rational x)
   (if (exact? x) (number->string x) (number->string (inexact->exact x))))

#(define (msmd-location event)
   (let ((origin (ly:event-property event 'origin #f)))
     (if (ly:input-location? origin)
         (let ((flcc (ly:input-file-line-char-column origin)))
           (msmd-flcc->string flcc))
         "")))

#(define (msmd-geometry-engraver context)
   (let ((score -1))
     (make-engraver
      ((initialize engraver)
       (set! msmd-layout-score-index (1+ msmd-layout-score-index))
       (set! score msmd-layout-score-index))
      (listeners
       ;; Every context that iterates a repeat sends these; they reach the Score.
       ((volta-repeat-start-event engraver event)
        (msmd-log-repeat score "iterated-start"
                         (ly:moment-main (ly:context-current-moment context)) #f #f "" ""))
       ((volta-repeat-end-event engraver event)
        (let ((body (ly:event-property event 'repeat-body-start-moment #f)))
          (if (ly:moment? body)
              (msmd-log-repeat score "iterated-return" (ly:moment-main body)
                               (ly:moment-main (ly:context-current-moment context))
                               #f "" "")))))
      (acknowledgers
       ((note-head-interface engraver grob source-engraver)
        (let ((cause (ly:grob-property grob 'cause #f)))
          (if (and (ly:stream-event? cause)
                   (memq 'note-event (ly:event-property cause 'class '())))
              (set! msmd-pending-heads
                    (cons (list score grob (ly:context-current-moment context))
                          msmd-pending-heads)))))
       ((tie-interface engraver grob source-engraver)
        ;; RepeatTie and LaissezVibrerTie are items, not ties to a next note.
        (if (ly:spanner? grob)
            (set! msmd-pending-ties (cons grob msmd-pending-ties))))
       ((staff-symbol-interface engraver grob source-engraver)
        (set! msmd-pending-staves (cons (list score grob) msmd-pending-staves)))
       ((text-script-interface engraver grob source-engraver)
        (msmd-log-text-mark score grob context))
       ((text-mark-interface engraver grob source-engraver)
        (msmd-log-text-mark score grob context))
       ((mark-interface engraver grob source-engraver)
        (msmd-log-text-mark score grob context))
       ((script-interface engraver grob source-engraver)
        (let ((sign (msmd-script-sign grob)))
          (if sign (msmd-log-mark score grob context (format #f "[~a]" sign)))))))))

#(define (msmd-performed-logger context)
   (let ((score -1) (voice -1))
     (make-performer
      ((initialize performer)
       (set! score msmd-midi-score-index)
       (set! msmd-midi-voice-index (1+ msmd-midi-voice-index))
       (set! voice msmd-midi-voice-index))
      (listeners
       ((note-event performer event)
        (let ((moment (ly:context-current-moment context))
              (pitch (ly:event-property event 'pitch #f))
              (duration (ly:event-property event 'duration #f)))
          (if (and msmd-performed-port (ly:pitch? pitch))
              (msmd-row msmd-performed-port
                      score
                      (msmd-event-id event)
                      voice
                      (msmd-rational (ly:moment-main moment))
                      (msmd-rational (ly:moment-grace moment))
                      (+ 60 (ly:pitch-semitones pitch))
                      (if (ly:duration? duration)
                          (msmd-rational (ly:moment-main (ly:duration-length duration)))
                          "0")
                      (if (msmd-event-flag event 'msmd-measured-repeat) 1 0)
                      (msmd-location event)))))))))

#(define (msmd-midi-score-counter context)
   (make-performer
    ((initialize performer)
     (set! msmd-midi-score-index (1+ msmd-midi-score-index))
     (set! msmd-midi-voice-index -1)
     (if (not msmd-performed-port)
         (begin
           (set! msmd-performed-port (open-output-file (msmd-output-file ".msmd-performed.tsv")))
           (msmd-table-header msmd-performed-port "performed"
                              '("score" "event_id" "voice" "moment_main" "moment_grace"
                                "pitch" "duration_whole" "measured_repeat" "source"))))
     (force-output msmd-performed-port))))

#(define (msmd-log-barline score moment glyph alternative)
   "Remember one bar line (or start of an alternative, GLYPH empty) for the barlines table."
   (set! msmd-pending-barlines
         (cons (msmd-row-string
                       score (msmd-rational (ly:moment-main moment)) glyph alternative)
               msmd-pending-barlines)))

%% A measure, as msmd-measure-engraver collects it:
%%   #(score start-moment start-column bar-number nominal-length measure-position
%%     alternative cadenza multi-measure-rest end-moment end-column)
#(define (msmd-measure-engraver context)
   "In a Score: record every measure (where LilyPond's Timing starts one) and every bar line."
   (let ((score -1) (current #f) (first-step #t) (checked #f)
         (bar-lines '()) (mm-rest #f) (last-alternative 0))
     (define (close! moment column)
       (if current
           (begin
             (vector-set! current 9 moment)
             (vector-set! current 10 column))))
     (make-engraver
      (acknowledgers
       ((bar-line-interface engraver grob source-engraver)
        (set! bar-lines (cons grob bar-lines)))
       ((multi-measure-rest-interface engraver grob source-engraver)
        (set! mm-rest #t)))
      ((process-music engraver)
       (if (not checked)
           (let ((moment (ly:context-current-moment context))
                 (column (ly:context-property context 'currentCommandColumn #f)))
             (set! checked #t)
             (if first-step (set! score msmd-layout-score-index))
             (if (or first-step (eq? #t (ly:context-property context 'measureStartNow #f)))
                 (begin
                   (close! moment column)
                   (set! current
                         (vector score moment column
                                 (ly:context-property context 'currentBarNumber 1)
                                 (ly:moment-main (ly:context-property context 'measureLength
                                                                      (ly:make-moment 1)))
                                 (ly:moment-main (ly:context-property context 'measurePosition
                                                                      ZERO-MOMENT))
                                 (ly:context-property context 'alternativeNumber 0)
                                 #f #f #f #f))
                   (set! msmd-pending-measures (cons current msmd-pending-measures)))))))
      ((stop-translation-timestep engraver)
       (let ((moment (ly:context-current-moment context))
             (column (ly:context-property context 'currentCommandColumn #f))
             (alternative (ly:context-property context 'alternativeNumber 0))
             (glyphs (filter (lambda (g) (and (string? g) (not (string-null? g))))
                             (map (lambda (bar) (ly:grob-property bar 'glyph #f)) bar-lines))))
         (if current
             (begin
               (if (not (ly:context-property context 'timing #t)) (vector-set! current 7 #t))
               (if mm-rest (vector-set! current 8 #t))))
         (if (and (pair? bar-lines) (ly:grob? column))
             (hashq-set! msmd-column-bars column
                         (append bar-lines (hashq-ref msmd-column-bars column '()))))
         (if (or (pair? glyphs) (not (equal? alternative last-alternative)))
             (msmd-log-barline score moment (if (pair? glyphs) (car glyphs) "")
                               (if (integer? alternative) alternative 0)))
         (set! last-alternative alternative)
         (set! bar-lines '())
         (set! mm-rest #f)
         (set! checked #f)
         (set! first-step #f)))
      ((finalize engraver)
       ;; The last time step, at the end of the music, opens no measure of its own.
       (let ((end (ly:context-current-moment context)))
         (if (and current (equal? (vector-ref current 1) end) (pair? msmd-pending-measures)
                  (eq? (car msmd-pending-measures) current))
             (set! msmd-pending-measures (cdr msmd-pending-measures))
             (close! end (ly:context-property context 'currentCommandColumn #f))))))))

%% Page layout: from system-relative extents to page positions.
#(define (msmd-line-offsets layout page line config-y)
   "Return (x . y) of LINE's reference point on the page, in staff spaces, y down."
   (let* ((extra (ly:prob-property line 'extra-offset '(0 . 0)))
          (y (ly:prob-property line 'Y-offset #f))
          (y (if (number? y) y config-y))
          (x (ly:prob-property line 'X-offset 0.0))
          (margin (if (and (ly:output-def-lookup layout 'two-sided #f)
                           (not (even? (ly:prob-property page 'page-number 1))))
                      (ly:prob-property page 'right-margin 0.0)
                      (ly:prob-property page 'left-margin 0.0))))
     ;; As make-page-stencil and its caller in page.scm place the system.
     (cons (+ margin (ly:output-def-lookup layout 'horizontal-shift 0.0) x (car extra))
           (+ (ly:prob-property page 'top-margin 0.0) y (cdr extra)))))

#(define (msmd-fmt x)
   "X with three decimals, exactly as (format #f \"~,3f\" X) writes it: the shortest
decimal form of X rounded half up (away from zero) at the third decimal."
   (let* ((y (abs (exact->inexact x)))
          (scaled (* y 1000.0))
          (whole (floor scaled))
          (rest (- scaled whole)))
     (if (and (< y 1e6) (> (abs (- rest 0.5)) 1e-6))
         ;; Far from a half: the binary value rounds as its decimal form does.
         (let ((r (inexact->exact (if (< rest 0.5) whole (+ whole 1.0)))))
           (msmd-fixed3 (or (< x 0) (eqv? x -0.0)) r))
         (msmd-fmt-exact x))))

#(define (msmd-fixed3 negative thousandths)
   (let ((fraction (number->string (remainder thousandths 1000))))
     (string-append (if negative "-" "") (number->string (quotient thousandths 1000)) "."
                    (make-string (- 3 (string-length fraction)) #\0) fraction)))

#(define (msmd-fmt-exact x)
   "msmd-fmt near a half: round the shortest decimal form itself, as format does."
   (if (or (inf? x) (nan? x))
       (format #f "~,3f" x)
       (let* ((s (number->string (exact->inexact x)))
              (d (abs (string->number (string-append "#e" s)))))
         (msmd-fixed3 (char=? (string-ref s 0) #\-) (floor (+ (* d 1000) 1/2))))))

#(define (msmd-column-copies system-list)
   "Hash: original paper column -> list of (system . column as laid out in that system)."
   (let ((copies (make-hash-table)))
     (for-each
      (lambda (sys)
        (let ((columns (ly:grob-object sys 'columns #f)))
          (if (ly:grob-array? columns)
              (for-each
               (lambda (column)
                 (let* ((original (ly:grob-original column))
                        (key (if (ly:grob? original) original column)))
                   (hashq-set! copies key (cons (cons sys column) (hashq-ref copies key '())))))
               (ly:grob-array->list columns)))))
      system-list)
     copies))

#(define (msmd-write-measures port scale systems system-list staves-of)
   "Write one row per measure box of the pending measures (see msmd-measure-engraver)."
   (let* ((copies (msmd-column-copies system-list))
          (by-index (list->vector system-list))
          (measure-of-score (make-hash-table)))
     (define (extent-of sys axis)
       (let ((pieces (hashq-ref staves-of sys '())))
         (and (pair? pieces)
              (let ((extents (map (lambda (p) (ly:grob-extent p sys axis)) pieces)))
                (cons (apply min (map car extents)) (apply max (map cdr extents)))))))
     (define (pick column wanted)
       ;; The copy of COLUMN that opens (wanted 1) or closes (wanted -1) a measure.
       (and (ly:grob? column)
            (find (lambda (entry)
                    (let ((dir (ly:item-break-dir (cdr entry))))
                      (or (= dir 0) (= dir wanted))))
                  (hashq-ref copies column '()))))
     (define (first-column? sys column)
       (let ((columns (ly:grob-object sys 'columns #f)))
         (and (ly:grob-array? columns) (> (ly:grob-array-length columns) 0)
              (eq? column (ly:grob-array-ref columns 0)))))
     (define (boundary sys column fallback)
       ;; x in SYS of the middle of the bar lines printed at COLUMN (an original
       ;; command column inside the system, not at a line break), else FALLBACK.
       (let ((extents (filter-map
                       (lambda (bar)
                         (and (grob::is-live? bar) (eq? (ly:grob-system bar) sys)
                              (let ((extent (ly:grob-extent bar sys msmd-X)))
                                (and (interval-sane? extent) (< (car extent) (cdr extent))
                                     extent))))
                       (hashq-ref msmd-column-bars column '()))))
         (if (pair? extents)
             (/ (+ (apply min (map car extents)) (apply max (map cdr extents))) 2)
             fallback)))
     (msmd-table-header port "measures"
                        '("score" "measure" "part" "bar_number" "moment_main" "length_whole"
                          "measure_length" "measure_position" "alternative" "cadenza"
                          "multi_measure_rest" "page" "system" "x0_pt" "y0_pt" "x1_pt" "y1_pt"))
     (for-each
      (lambda (m)
        (let* ((score (vector-ref m 0))
               (index (hashq-ref measure-of-score score 0))
               (start (vector-ref m 1))
               (end (or (vector-ref m 9) start))
               (opening (pick (vector-ref m 2) 1))
               (closing (pick (vector-ref m 10) -1))
               (first (and opening (hashq-ref systems (car opening))))
               (last (and closing (hashq-ref systems (car closing))))
               (common (list score index (vector-ref m 3)
                             (msmd-rational (ly:moment-main start))
                             (msmd-rational (- (ly:moment-main end) (ly:moment-main start)))
                             (msmd-rational (vector-ref m 4))
                             (msmd-rational (vector-ref m 5))
                             (vector-ref m 6)
                             (if (vector-ref m 7) 1 0)
                             (if (vector-ref m 8) 1 0))))
          (hashq-set! measure-of-score score (1+ index))
          (if (and first last (<= (car first) (car last)))
              (let loop ((i (car first)) (part 0))
                (if (<= i (car last))
                    (let* ((sys (vector-ref by-index i))
                           (info (hashq-ref systems sys))
                           (xs (extent-of sys msmd-X))
                           (ys (extent-of sys msmd-Y)))
                      (if (and xs ys)
                          (let* ((open-here (and (eq? sys (car opening))
                                                 (= (ly:item-break-dir (cdr opening)) 0)
                                                 (not (first-column? sys (cdr opening)))))
                                 (close-here (and (eq? sys (car closing))
                                                  (= (ly:item-break-dir (cdr closing)) 0)))
                                 (x0 (if open-here
                                         (boundary sys (vector-ref m 2)
                                                   (ly:grob-relative-coordinate
                                                    (cdr opening) sys msmd-X))
                                         (car xs)))
                                 (x1 (if close-here
                                         (boundary sys (vector-ref m 10)
                                                   (ly:grob-relative-coordinate
                                                    (cdr closing) sys msmd-X))
                                         (cdr xs))))
                            (msmd-row port
                                    (list-ref common 0) (list-ref common 1) part
                                    (list-ref common 2) (list-ref common 3) (list-ref common 4)
                                    (list-ref common 5) (list-ref common 6) (list-ref common 7)
                                    (list-ref common 8) (list-ref common 9)
                                    (cadr info) (car info)
                                    (msmd-fmt (* scale (+ (caddr info) x0)))
                                    (msmd-fmt (* scale (- (cadddr info) (cdr ys))))
                                    (msmd-fmt (* scale (+ (caddr info) x1)))
                                    (msmd-fmt (* scale (- (cadddr info) (car ys)))))))
                      (loop (1+ i) (1+ part)))))
              (msmd-row port
                      (list-ref common 0) (list-ref common 1) 0 (list-ref common 2)
                      (list-ref common 3) (list-ref common 4) (list-ref common 5)
                      (list-ref common 6) (list-ref common 7) (list-ref common 8)
                      (list-ref common 9) -1 -1 "nan" "nan" "nan" "nan"))))
      (reverse msmd-pending-measures))))

#(define (msmd-write-geometry layout pages)
   (set! msmd-book-index (1+ msmd-book-index))
   (let* ((scale (* (ly:output-def-lookup layout 'output-scale) (/ 72 25.4)))
          (systems (make-hash-table))   ; system grob -> (index page x y)
          (system-list '())
          (tied-heads (make-hash-table))
          (suffix (if (= msmd-book-index 0) "" (format #f "-~a" msmd-book-index)))
          (heads-port (open-output-file (msmd-output-file (string-append suffix ".msmd-noteheads.tsv"))))
          (systems-port (open-output-file (msmd-output-file (string-append suffix ".msmd-systems.tsv")))))
     ;; Systems in reading order, with their page and offset.
     ;; Pages are numbered 1, 2, ... in PDF order, whatever first-page-number says.
     (let ((index 0) (page-count 0))
       (for-each
        (lambda (page)
          (set! page-count (1+ page-count))
          (let ((number page-count)
                (configuration (ly:prob-property page 'configuration '())))
            (for-each
             (lambda (line config-y)
               (let ((grob (ly:prob-property line 'system-grob #f)))
                 (if (ly:grob? grob)
                     (let ((offset (msmd-line-offsets layout page line config-y)))
                       (hashq-set! systems grob (list index number (car offset) (cdr offset)))
                       (set! system-list (cons grob system-list))
                       (set! index (1+ index))))))
             (ly:prob-property page 'lines '())
             (if (= (length configuration) (length (ly:prob-property page 'lines '())))
                 configuration
                 (make-list (length (ly:prob-property page 'lines '())) 0.0)))))
        pages))
     (set! system-list (reverse system-list))
     ;; Staff pieces per system, top to bottom.
     (let ((staves-of (make-hash-table)))
       (for-each
        (lambda (entry)
          (let* ((original (cadr entry))
                 (pieces (if (ly:spanner? original)
                             (let ((broken (ly:spanner-broken-into original)))
                               (if (null? broken) (list original) broken))
                             (list original))))
            (for-each
             (lambda (piece)
               (if (grob::is-live? piece)
                   (let ((sys (ly:grob-system piece)))
                     (if (and (ly:grob? sys) (hashq-ref systems sys))
                         (hashq-set! staves-of sys (cons piece (hashq-ref staves-of sys '())))))))
             pieces)))
        msmd-pending-staves)
       (msmd-table-header systems-port "systems"
                          '("system" "page" "staves" "x0_pt" "y0_pt" "x1_pt" "y1_pt" "staff_y_pt"))
       (for-each
        (lambda (sys)
          (let* ((info (hashq-ref systems sys))
                 (ox (caddr info)) (oy (cadddr info))
                 (pieces (sort (hashq-ref staves-of sys '())
                               (lambda (a b) (> (interval-center (ly:grob-extent a sys msmd-Y))
                                                (interval-center (ly:grob-extent b sys msmd-Y))))))
                 (xs (map (lambda (p) (ly:grob-extent p sys msmd-X)) pieces))
                 (ys (map (lambda (p) (ly:grob-extent p sys msmd-Y)) pieces)))
            (hashq-set! staves-of sys pieces)
            (if (pair? pieces)
                (msmd-row systems-port
                        (car info) (cadr info) (length pieces)
                        (msmd-fmt (* scale (+ ox (apply min (map car xs)))))
                        (msmd-fmt (* scale (- oy (apply max (map cdr ys)))))
                        (msmd-fmt (* scale (+ ox (apply max (map cdr xs)))))
                        (msmd-fmt (* scale (- oy (apply min (map car ys)))))
                        (string-join
                         (map (lambda (y) (msmd-fmt (* scale (- oy (interval-center y))))) ys)
                         ",")))))
        system-list)
       ;; Tie continuations: the right-hand head of every tie.
       (for-each
        (lambda (tie)
          (let ((right (ly:spanner-bound tie msmd-RIGHT)))
            (if (ly:grob? right) (hashq-set! tied-heads right #t))))
        msmd-pending-ties)
       ;; Noteheads.
       (msmd-table-header heads-port "noteheads"
                          '("score" "event_id" "page" "system" "staff" "x0_pt" "y0_pt" "x1_pt"
                            "y1_pt" "pitch" "moment_main" "moment_grace" "duration_whole" "tied"
                            "visible" "source"))
       (for-each
        (lambda (entry)
          (let* ((score (car entry))
                 (grob (cadr entry))
                 (moment (caddr entry))
                 (event (ly:grob-property grob 'cause))
                 (pitch (ly:event-property event 'pitch #f))
                 (duration (ly:event-property event 'duration #f))
                 (alive (grob::is-live? grob))
                 (sys (and alive (ly:grob-system grob)))
                 (info (and (ly:grob? sys) (hashq-ref systems sys)))
                 (staff (and info (ly:grob-object grob 'staff-symbol #f)))
                 (staff-index (if (and info (ly:grob? staff))
                                  (let loop ((rest (hashq-ref staves-of sys '())) (i 0))
                                    (cond ((null? rest) -1)
                                          ((eq? (car rest) staff) i)
                                          (else (loop (cdr rest) (1+ i)))))
                                  -1))
                 (stencil (and info (ly:grob-property grob 'stencil #f)))
                 (visible (and info (ly:stencil? stencil)
                               (not (ly:stencil-empty? stencil))
                               (not (eq? #t (ly:grob-property grob 'transparent #f)))))
                 (xe (and info (ly:grob-extent grob sys msmd-X)))
                 (ye (and info (ly:grob-extent grob sys msmd-Y))))
            (msmd-row heads-port
                    score (msmd-event-id event)
                    (if info (cadr info) -1) (if info (car info) -1) staff-index
                    (if (and info (interval-sane? xe)) (msmd-fmt (* scale (+ (caddr info) (car xe)))) "nan")
                    (if (and info (interval-sane? ye)) (msmd-fmt (* scale (- (cadddr info) (cdr ye)))) "nan")
                    (if (and info (interval-sane? xe)) (msmd-fmt (* scale (+ (caddr info) (cdr xe)))) "nan")
                    (if (and info (interval-sane? ye)) (msmd-fmt (* scale (- (cadddr info) (car ye)))) "nan")
                    (if (ly:pitch? pitch) (+ 60 (ly:pitch-semitones pitch)) -1)
                    (msmd-rational (ly:moment-main moment))
                    (msmd-rational (ly:moment-grace moment))
                    (if (ly:duration? duration)
                        (msmd-rational (ly:moment-main (ly:duration-length duration)))
                        "0")
                    (if (hashq-ref tied-heads grob #f) 1 0)
                    (if visible 1 0)
                    (msmd-location event))))
        (reverse msmd-pending-heads))
       ;; Measures, one row per box.
       (let ((measures-port (open-output-file
                             (msmd-output-file (string-append suffix ".msmd-measures.tsv")))))
         (msmd-write-measures measures-port scale systems system-list staves-of)
         (close-port measures-port))
       (let ((barlines-port (open-output-file
                             (msmd-output-file (string-append suffix ".msmd-barlines.tsv")))))
         (msmd-table-header barlines-port "barlines"
                            '("score" "moment_main" "glyph" "alternative"))
         (for-each (lambda (row) (display row barlines-port)) (reverse msmd-pending-barlines))
         (close-port barlines-port)))
     (close-port heads-port)
     (close-port systems-port)
     (hash-clear! msmd-mark-carriers)
     (set! msmd-pending-heads '())
     (set! msmd-pending-ties '())
     (set! msmd-pending-staves '())
     (set! msmd-pending-measures '())
     (set! msmd-pending-barlines '())
     (hash-clear! msmd-column-bars)))

\paper {
  page-post-process = #msmd-write-geometry
}

\layout {
  \context { \Score \consists #msmd-geometry-engraver }
  \context { \Score \consists #msmd-measure-engraver }
  \context { \Voice \consists #msmd-mark-carrier-engraver }
  \context { \Dynamics \consists #msmd-mark-carrier-engraver }
}

\midi {
  \context { \Score \consists #msmd-midi-score-counter }
  \context { \Voice \consists #msmd-performed-logger }
}
