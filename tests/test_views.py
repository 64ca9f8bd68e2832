"""The post's routes answer with the post's texts."""


def test_index_answers_with_the_posts_text(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.text == "Development Prometheus-backed Flash App"


def test_database_answers_after_the_simulated_query(client):
    response = client.get("/database/")
    assert response.status_code == 200
    assert response.text == "Completed expensive database operation"


def test_metrics_is_served_with_and_without_the_trailing_slash(client):
    for path in ("/metrics", "/metrics/"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.content_type.startswith("text/plain; version=")
        assert "# TYPE http_requests_total counter" in response.text


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_error_route_fails_with_500(app):
    app.testing = False  # let Flask turn the exception into a 500 as in production
    response = app.test_client().get("/error/")
    assert response.status_code == 500


def test_unknown_path_is_404_and_wrong_method_is_405(client):
    assert client.get("/no/such/page").status_code == 404
    assert client.post("/").status_code == 405
