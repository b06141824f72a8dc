package router

import "github.com/jackc/pgx/v5/pgconn"

func multiShardError(rt *Route) *pgconn.PgError { panic("todo") }
