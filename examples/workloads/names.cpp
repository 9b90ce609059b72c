// A template-heavy C++ workload for kprof's naming tests (issue #10 points 8 and 9): its symbol
// table exercises the demangler, and `std::generate_n` with a lambda, inlined at -O2, exercises
// the qualification of inlined frames.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

namespace kprof_names {

template <typename T, int N>
struct Matrix {
  T cells[N * N];
  T trace() const {
    T sum{};
    for (int i = 0; i < N; i++) sum += cells[i * N + i];
    return sum;
  }
};

template <typename... Ts>
struct Visitor : Ts... {
  using Ts::operator()...;
};
template <typename... Ts>
Visitor(Ts...) -> Visitor<Ts...>;

class Shape {
 public:
  virtual ~Shape() = default;
  virtual double area() const = 0;
};

class Square : public Shape {
 public:
  explicit Square(double side) : side_(side) {}
  double area() const override { return side_ * side_; }

 private:
  double side_;
};

template <typename Key, typename Value>
__attribute__((noinline)) Value sum_values(const std::map<Key, Value>& map) {
  Value total{};
  for (const auto& [key, value] : map) total += value;
  return total;
}

__attribute__((noinline)) double visit_all(const std::vector<std::variant<int, double, std::string>>& items) {
  double total = 0;
  for (const auto& item : items)
    std::visit(Visitor{[&](int i) { total += i; }, [&](double d) { total += d; },
                       [&](const std::string& s) { total += static_cast<double>(s.size()); }},
               item);
  return total;
}

}  // namespace kprof_names

// The hot loop: std::generate_n fills a vector through a lambda, both inlined into fill().
__attribute__((noinline)) void fill(std::vector<double>& out, unsigned seed) {
  unsigned state = seed;
  std::generate_n(out.begin(), out.size(), [&state]() {
    state = state * 1103515245u + 12345u;
    double x = static_cast<double>(state >> 8);
    for (int i = 0; i < 8; i++) x = x * 0.5 + 1.0 / (x + 1.0);
    return x;
  });
}

int main(int argc, char** argv) {
  long rounds = argc > 1 ? std::atol(argv[1]) : 2000;
  std::vector<double> values(4096);
  double checksum = 0;
  for (long r = 0; r < rounds; r++) {
    fill(values, static_cast<unsigned>(r));
    checksum += std::accumulate(values.begin(), values.end(), 0.0);
  }
  std::map<std::string, long> counts{{"a", 1}, {"b", 2}};
  std::unordered_map<int, std::shared_ptr<kprof_names::Shape>> shapes;
  shapes[1] = std::make_shared<kprof_names::Square>(2.0);
  std::function<double(int)> area = [&](int k) { return shapes.at(k)->area(); };
  std::vector<std::variant<int, double, std::string>> items{1, 2.5, std::string("abc")};
  kprof_names::Matrix<long, 3> m{};
  m.cells[4] = 7;
  std::ostringstream text;
  text << checksum << ' ' << kprof_names::sum_values(counts) << ' ' << area(1) << ' '
       << kprof_names::visit_all(items) << ' ' << m.trace() << ' '
       << std::get<0>(std::make_tuple(std::string("t"), 1)).size();
  std::puts(text.str().c_str());
  return 0;
}
