"""One APIRouter per module; app.main includes them."""
