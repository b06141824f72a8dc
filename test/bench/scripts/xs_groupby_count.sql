SELECT g, count(*) FROM xs GROUP BY g;
