module stackgen.local/node/pause

go 1.25.0
