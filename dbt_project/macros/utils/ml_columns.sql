{#-
    The feature columns of fct_customer_features that the models read, as ml/features.py's FEATURES
    (is_member aside: it is derived from member_id) and ENGAGEMENT_COLUMNS. One list here, so the
    marts of models/marts/ml carry the same columns and Python selects them by name.
-#}
{% macro ml_feature_columns() -%}
    {{ return([
        "orders_total", "revenue_total", "margin_total", "recency_days", "frequency", "recency", "t",
        "monetary_value", "avg_order_value", "online_order_share", "orders_30d", "orders_90d",
        "orders_365d", "revenue_90d", "revenue_365d", "tenure_days", "sessions_30d", "product_views_30d",
        "add_to_carts_30d", "sends_90d", "opens_90d", "clicks_90d", "consent_email", "consent_push",
        "consent_sms", "consent_kakao", "r_score", "f_score", "m_score",
    ]) }}
{%- endmacro %}

{% macro ml_engagement_columns() -%}
    {%- set columns = [] -%}
    {%- for channel in var('channels') -%}
        {%- do columns.append('sends_' ~ channel ~ '_365d') -%}
        {%- do columns.append('opens_' ~ channel ~ '_365d') -%}
    {%- endfor -%}
    {{ return(columns) }}
{%- endmacro %}

{#- The listed columns of `alias`, each followed by a comma. -#}
{% macro ml_select(alias, columns) -%}
    {%- for column in columns %}
        {{ alias }}.{{ column }},
    {%- endfor %}
{%- endmacro %}
