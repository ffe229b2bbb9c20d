// entropyeng._core: one pybind11 module assembled from one register_<area>.cpp per area.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_landscape(py::module_& m);
void register_langevin(py::module_& m);
void register_cuda(py::module_& m);
void register_wlmc(py::module_& m);
void register_walkers(py::module_& m);

PYBIND11_MODULE(_core, m) {
    m.doc() = "entropyeng compiled kernels (CPU, and CUDA when built with it).";
    register_landscape(m);
    register_langevin(m);
    register_cuda(m);
    register_wlmc(m);
    register_walkers(m);
}
