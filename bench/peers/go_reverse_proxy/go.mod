module capstan.dev/bench/go_reverse_proxy

go 1.22
