# GPAW build settings for `make dft-env`: a serial build (no MPI, even if an mpicc is on PATH)
# against Debian's libxc, OpenBLAS and FFTW.
mpi = False
compiler = "g++"
fftw = True
libraries = ["xc", "openblas", "fftw3"]
