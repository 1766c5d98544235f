#include <cstdio>
int main() { std::puts("moelab"); return 0; }
