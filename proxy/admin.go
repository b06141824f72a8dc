package proxy

// runAdmin serves the admin console (database "pgrouter").
func (ss *session) runAdmin() {
	ss.writeClient(appendError(nil, pgErr("0A000", "admin console not implemented yet", "")))
}
