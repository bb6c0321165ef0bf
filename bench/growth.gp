# The growth curve of the scale benchmark (bench/run.ts calls it with datafile and outfile set):
# provider RSS and CPU, and idle bytes per node per second on the hub, against the number of hollow nodes.
set terminal pngcairo size 1200,420 font ",10" noenhanced
set output outfile
set multiplot layout 1,3 title "EdgeFarm provider and wire vs hollow nodes (one run of make bench, 2-core machine)"
set grid
set xlabel "hollow edge nodes"
set key off
set logscale x
set yrange [0:*]
set title "provider RSS (MiB)"
plot datafile using 1:2 with linespoints pt 7 lw 2
set title "provider CPU (s per minute, idle)"
plot datafile using 1:3 with linespoints pt 7 lw 2
set title "hub bytes per node per second (idle)"
plot datafile using 1:4 with linespoints pt 7 lw 2
unset multiplot
