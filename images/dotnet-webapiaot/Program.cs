// A minimal API in the shape of the `webapiaot` template: CreateSlimBuilder,
// source-generated JSON (no reflection, so NativeAOT keeps what it needs).
using System.Text.Json.Serialization;

var builder = WebApplication.CreateSlimBuilder(args);
builder.Services.ConfigureHttpJsonOptions(options =>
    options.SerializerOptions.TypeInfoResolverChain.Insert(0, AppJsonContext.Default));
builder.Services.AddOpenApi();

var app = builder.Build();

if (app.Environment.IsDevelopment())
{
    // GET /openapi/v1.json (ASPNETCORE_ENVIRONMENT=Development).
    app.MapOpenApi();
}

Todo[] todos =
[
    new(1, "Walk the dog"),
    new(2, "Do the dishes", new DateOnly(2025, 4, 7)),
    new(3, "Do the laundry", new DateOnly(2025, 4, 8)),
];

app.MapGet("/healthz", () => "ok");
var api = app.MapGroup("/todos");
api.MapGet("/", () => todos);
api.MapGet("/{id}", (int id) =>
    todos.FirstOrDefault(t => t.Id == id) is { } todo ? Results.Ok(todo) : Results.NotFound());

app.Run();

public record Todo(int Id, string? Title, DateOnly? DueBy = null, bool IsComplete = false);

[JsonSerializable(typeof(Todo[]))]
internal partial class AppJsonContext : JsonSerializerContext
{
}
