module github.com/billcycle/billcycle

go 1.26.8
