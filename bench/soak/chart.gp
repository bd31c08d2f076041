# bench/soak/chart.gp: the soak's chart (gnuplot). Called by run.sh as
#   gnuplot -e "csv='...'; png='...'; fit='...'; title='...'" bench/soak/chart.gp
# Four panels against minutes: processes below the daemon, threads, the daemon's RSS and
# open fds; points from /metrics, a thin line from /proc, the dashed least-squares fit from
# analyse.js (fit file: a_<series> slope per second, b_<series> intercept), and the browser
# recycles (cdpilot_recycles_total) on the right axis of the first panel.
set datafile separator ','
set terminal pngcairo size 1400,900 font 'sans,10'
set output png
load fit
set multiplot layout 2,2 title title
set xlabel 'minutes'
set grid
set key top left box opaque
m(x) = x / 60.0

set title 'processes below the daemon'
set y2label 'recycles'
set y2tics
plot csv using (m($1)):3 with points pt 7 ps 0.4 title '/metrics', \
     csv using (m($1)):4 with lines lw 0.5 title '/proc', \
     a_procs * x * 60 + b_procs with lines dt 2 lw 2 title 'fit', \
     csv using (m($1)):12 axes x1y2 with steps lc rgb 'gray' title 'recycles'
unset y2label
unset y2tics

set title 'threads (daemon and its tree)'
plot csv using (m($1)):5 with points pt 7 ps 0.4 title '/metrics', \
     csv using (m($1)):6 with lines lw 0.5 title '/proc', \
     a_threads * x * 60 + b_threads with lines dt 2 lw 2 title 'fit'

set title 'daemon RSS (MB)'
plot csv using (m($1)):7 with points pt 7 ps 0.4 title '/metrics', \
     csv using (m($1)):8 with lines lw 0.5 title '/proc', \
     a_rss_mb * x * 60 + b_rss_mb with lines dt 2 lw 2 title 'fit'

set title 'daemon open fds'
plot csv using (m($1)):9 with points pt 7 ps 0.4 title '/metrics', \
     csv using (m($1)):10 with lines lw 0.5 title '/proc', \
     a_fds * x * 60 + b_fds with lines dt 2 lw 2 title 'fit'
unset multiplot
